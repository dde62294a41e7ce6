resource "builtin_data" "a" {
  input = "x"
}

output "typo" {
  value = builtin_data.a.outptu
}
