//! Values with unknown and sensitive marks, the expression evaluator and the function library
