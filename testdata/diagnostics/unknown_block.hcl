resourse "builtin_data" "a" {
  input = 1
}
