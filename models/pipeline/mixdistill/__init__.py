"""mixdistill training pipeline: teacher, mixed-distilled student, training, export to a model bundle."""

__version__ = "0.1.0"
