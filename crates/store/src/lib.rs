//! sijil-store
