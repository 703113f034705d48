//! Evaluation metrics: retrieval, representational similarity (being written).
