resource "builtin_random" "name" {
  length = 4
}

resource "builtin_data" "a" {
  for_each = toset([builtin_random.name.result])
  input    = each.key
}
