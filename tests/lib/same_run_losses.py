"""Two runs of pretrain that must agree: every training loss (losses.tsv) within a relative
tolerance, and the validation losses rank 0's log prints (4 decimals) equal up to the last digit's
rounding.
  same_run_losses.py RUN_A RUN_B STEPS TOLERANCE NAME"""
import re
import sys


def losses(run):
    train = [float(l.split("\t")[1]) for l in open(run + "/losses.tsv")]
    valid = [float(v) for v in
             re.findall(r"valid loss ([0-9.]+)", open(run + "/logs/rank0.log").read())]
    return train, valid


a, b, steps, tol, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
(t0, v0), (t1, v1) = losses(a), losses(b)
assert len(t0) == len(t1) == steps and len(v0) == len(v1) >= 2, (len(t0), len(t1), v0, v1)
worst = max(abs(x - y) / abs(x) for x, y in zip(t0, t1))
assert worst < tol, f"{name}: training losses differ by {worst:.2e} (relative) > {tol}"
worst_valid = max(abs(x - y) for x, y in zip(v0, v1))
assert worst_valid <= 1.5e-4, f"{name}: validation losses {v0} vs {v1}"
print("ok   %s: %d training losses within %.2g (relative) and %d validation losses (4 decimals) "
      "equal" % (name, steps, worst, len(v0)))
