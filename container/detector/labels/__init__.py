"""Labels as people export them, read into feature-group records: one module per format, the class mapping, and
what they share (`common`: a labelled image, a refused one, where each came from)."""
