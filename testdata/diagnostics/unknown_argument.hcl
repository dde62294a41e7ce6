resource "builtin_data" "a" {
  inptu = "x"
}
