"""Approximate nearest-neighbour search, chapter 12: exact KNN, NSW/HNSW from scratch, and library sweeps.

- `exact`: brute-force k-NN (the ground truth), recall@k, synthetic vectors, a 2-D projection.
- `hnsw`: NSW and HNSW written from scratch for teaching, with a trace of every layer a search visits.
- `sweep`: hnswlib / faiss / scratch over M, efConstruction, efSearch, with a memory guard before allocating.
"""
