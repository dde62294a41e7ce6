//! State: the versioned on-disk format, checksums, the local backend and locking
