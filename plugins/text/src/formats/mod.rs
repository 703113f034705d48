//! Small readers for the file formats the lexical functions load: NumPy arrays, one string
//! column of a Parquet file (with Snappy pages and the Thrift compact protocol its metadata uses),
//! MessagePack integer maps, and spaCy's 64-bit string hash.
//!
//! Each reader does exactly what the pinned assets need and refuses the rest with a clear error;
//! together they compile in about a second. The general `parquet` crate (57, default features
//! off, Snappy only) pulls in some 35 crates (thrift, chrono, num-bigint, ahash, …) and took 87 s
//! of CPU time, two minutes on two cores, to build here.

pub mod msgpack;
pub mod murmur;
pub mod npy;
pub mod parquet;
pub mod snappy;
pub mod thrift;
