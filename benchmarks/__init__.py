"""Speed and memory of chainrule against micrograd 0.1.0, PyTorch 0-d tensors and plain floats.

Not part of the test run. `python -m benchmarks` runs five workloads (W1 micrograd's demo step,
W2 a deep chain, W3 a wide graph, W4 memory, W5 drawing), each engine in its own process, checks
that all engines computed the same losses and gradients, and prints tables of medians and
ratios. `--quick` shrinks every size so that the whole suite runs in seconds.
"""
