def _helper(v):
    return v.no_such_method()


def f(x):
    return _helper(x) + 1
