//! CMS engine (RFC 5652) for Estuary. Work in progress.
