//! commute plugin for vision: text rendered to images with a real font, and PP-OCRv4 recognizer
//! features and reading through ONNX Runtime.
