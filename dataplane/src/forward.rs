//! (being written) Per-core request channel to the control plane.
