"""x86-64: the architecture facts only (:mod:`~vm_translate.x86_64.archinfo`); the emulation front end comes later.

x86-64 programs run through KVM today (vm-accel), which reads the register
layout, the system-call registers and the Linux start state from here.
"""
