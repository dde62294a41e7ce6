resource "builtin_random" "a" {
  length = "long"
}
