"""Test kit of vm-translate, shipped so that other packages' tests can use it.

``vm_translate.testing.unicorn_oracle`` runs RISC-V instruction words on Unicorn
and on vm's reference executor and compares the states; vm-translate's own
tests and vm-jit's engine tests use it. It needs the ``test`` extra
(``pip install vm-translate[test]``: vm-mem, unicorn, hypothesis); nothing in
vm-translate imports this package at run time.
"""
