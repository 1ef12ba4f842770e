"""--const data in user derivative checks (hand-derived derivatives)."""
import numpy as np


def fc(x, X):
    return 0.5 * np.sum((X @ x) ** 2)


def dfc(x, X):
    """d/dx 0.5 |X x|^2 = X^T X x."""
    return X.T @ (X @ x)


def fi(x, idx):
    return np.sum(x[idx] ** 2)


def dfi(x, idx):
    """d/dx_j sum_k x[idx_k]^2 = 2 x_j * (how often j is in idx)."""
    return 2 * x * np.bincount(idx, minlength=x.size)


def fi_wrong(x, idx):
    return np.sum(x[idx] ** 2)


def dfi_wrong(x, idx):
    """Wrong: ignores the repeated index (2 x, not 2 x * count)."""
    return 2 * x * (np.bincount(idx, minlength=x.size) > 0)


def f_whole(x):
    """Runs only at whole-number x: finite differences cannot evaluate it."""
    if not np.all(x == np.round(x)):
        raise ValueError("whole numbers only")
    return np.sum(x ** 2)


def df_whole(x):
    return 2 * x


def f_cut(x):
    """The engine cannot differentiate it (np.asarray cuts the graph) and it
    runs only at whole numbers: nothing can compare."""
    x = np.asarray(x)
    if not np.all(x == np.round(x)):
        raise ValueError("whole numbers only")
    return np.sum(x ** 2)


def df_cut_wrong(x):
    return 100 * x


def f_xy(x, y):
    return np.sum(x * y)


def df_loop(x, y):
    """Never returns."""
    while True:
        pass


def df_stubborn(x, y):
    """Swallows the first timeout, then never returns."""
    try:
        while True:
            pass
    except BaseException:
        pass
    while True:
        pass


def df_xy(x, y):
    """d/dx sum(x y) = y, d/dy = x."""
    return y * np.ones_like(x), np.sum(x) * np.ones_like(y)


def df_none(x, y):
    return None


def df_text(x, y):
    return "abc"


def df_gen(x, y):
    return (a for a in (x, y))


def df_xa(x, A):
    return A * np.ones_like(x), np.sum(x)


def f_log(x):
    return np.sum(np.log(x))


def df_log(x):
    """d/dx sum(log x) = 1/x."""
    return 1 / x


def f_scaled(x, s=2.0):
    return s * np.sum(x ** 2)


def df_scaled(x, s=2.0):
    """d/dx s |x|^2 = 2 s x (s a parameter with a default: data)."""
    return 2 * s * x
