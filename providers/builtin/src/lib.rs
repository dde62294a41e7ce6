//! The built-in provider: builtin_data, builtin_file and builtin_random, no cluster needed
