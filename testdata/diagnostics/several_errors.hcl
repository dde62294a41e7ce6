resource "builtin_data" "a" {
  input = upperr("x")
}

resource "builtin_data" "b" {
  input = builtin_data.a.outptu
}

resource "builtin_file" "c" {
  content = "no path"
}
