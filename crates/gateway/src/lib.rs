//! sijil-gateway
