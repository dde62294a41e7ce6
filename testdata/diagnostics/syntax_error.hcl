resource "builtin_data" "a" {
  input = [1, 2
}
