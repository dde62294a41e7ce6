//! Rendering plans, values and diagnostics as human text
