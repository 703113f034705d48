//! commute plugin for audio (being written).
