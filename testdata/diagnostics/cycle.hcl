resource "builtin_data" "a" {
  input = builtin_data.c.output
}

resource "builtin_data" "b" {
  input = builtin_data.a.output
}

resource "builtin_data" "c" {
  input = local.from_b
}

locals {
  from_b = builtin_data.b.output
}
