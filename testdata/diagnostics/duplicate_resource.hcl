resource "builtin_data" "a" {
  input = 1
}

resource "builtin_data" "a" {
  input = 2
}
