//! commute plugin for text: MiniLM sentence embeddings (ONNX Runtime or candle), static word
//! vectors (GloVe, French fastText), VADER valence, and the word lists, relation pairs and
//! bilingual lexicons that experiments align them on.
