"""ALiBi's head slopes (Press et al., "Train Short, Test Long"), shared by the PyTorch references:
2^(-8k/n) for heads k = 1..n when n is a power of two; otherwise the slopes of the largest power of
two p below n, then every other slope of 2p, n - p of them (BLOOM's build_alibi_tensor)."""
import math


def alibi_slopes(n):
    def powers(k):
        start = 2.0 ** (-8.0 / k)
        return [start ** (i + 1) for i in range(k)]
    if math.log2(n).is_integer():
        return powers(n)
    p = 2 ** math.floor(math.log2(n))
    return powers(p) + alibi_slopes(2 * p)[0::2][:n - p]
