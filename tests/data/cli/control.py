"""Python control flow on tensor values."""


def f(x):
    y = x
    for _ in range(3):
        y = y * x  # x**4
    n = 0
    while y.sum() > 100 and n < 60:  # halve until the sum is at most 100 (bounded: inf)
        y = y / 2
        n += 1
    if y.sum() > 10:
        return y.sum()
    return -y.sum()
