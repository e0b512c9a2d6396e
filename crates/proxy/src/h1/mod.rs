//! The HTTP/1 codec of the forwarding path: strict heads (`parse`), strict chunked
//! bodies (`chunked`) and heads rebuilt from the parsed slices (`write`). Nothing
//! here allocates; buffers are the caller's.

pub(crate) mod body;
pub(crate) mod buf;
pub mod chunked;
pub(crate) mod conn;
pub(crate) mod io;
pub mod parse;
pub(crate) mod prepare;
pub(crate) mod relay;
pub(crate) mod rewind;
pub(crate) mod tls_io;
pub(crate) mod upstream;
pub mod write;
