//! Black-box tests of the ferrogrid binary (added in the next commits).
