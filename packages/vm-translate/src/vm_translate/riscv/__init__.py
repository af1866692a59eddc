"""The RISC-V RV64 front end: decode tables for I, M, A, F, D, C, Zicsr, Zifencei lifted to vm's IR."""
