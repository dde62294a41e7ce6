resource "builtin_data" "a" {
  count    = 2
  for_each = toset(["x"])
  input    = 1
}
