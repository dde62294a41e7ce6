resource "builtin_dta" "a" {
  input = 1
}
