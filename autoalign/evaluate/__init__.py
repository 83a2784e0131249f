"""3H evaluation: the lab suite (reads the lab oracle's ground truth) and public suites. Only this package may
import ``autoalign.lab.oracle``."""
