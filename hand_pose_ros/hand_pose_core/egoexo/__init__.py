"""The Ego-Exo4D hand benchmark: file formats, official constants, metrics, reference baseline, reports."""
