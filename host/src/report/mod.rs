//! Reports: plots and the Markdown report of a run (being written).
