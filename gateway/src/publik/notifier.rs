//! The notifier (placeholder while the intake is built).
