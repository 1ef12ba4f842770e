"""The notebook's f: a loop and a branch on tensor values.

    gradcli eval examples/model.py:f --a 0.5
"""


def f(a):
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    if b.sum() > 0:
        c = b
    else:
        c = 100 * b
    return c
