"""Transfer-learning benchmark sweep: accuracy against training memory.

One concept per module:

- ``plan``: the grid of run configurations, each with a stable run id.
- ``store``: the append-only JSONL results file that makes a sweep resumable.
- ``sweep``: runs the configurations not yet in the store, with a progress bar.
- ``distributed``: the same as tasks on a cluster, the driver alone writing
  the store; ``ray_executor`` its Ray backend (``--executor=ray``).
- ``runner``: the real per-run function (pretrained backbone -> method ->
  fine-tune -> accuracy, analytic memory, measured TFLM arena).
- ``aggregate``: mean and standard deviation over seeds.
- ``report``: markdown tables (main results, targets, ablations).
- ``plot``: accuracy against training memory, one panel per dataset.
- ``presets``: the ``quick`` and ``full`` sweeps and their ablation grids.
"""
