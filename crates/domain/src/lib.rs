//! sijil-domain
