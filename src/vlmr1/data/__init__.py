"""Data: the seed's jsonl schema, loading and checking (``loading.load_checked_data`` is the one path train and eval
start from; ``check`` lists every problem, asking the task about its rows), and converters (coco, refcoco, shapes,
gui-synthetic) that write jsonl atomically."""
