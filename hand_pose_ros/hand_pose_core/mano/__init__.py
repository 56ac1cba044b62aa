"""MANO hand meshes: the official model files read without chumpy, the forward model, fitting, mesh files."""
