"""What every other package uses and nothing of ColdCopy's own: the settings, metrics, logs,
a clock, and the small protocols the layers above implement."""
