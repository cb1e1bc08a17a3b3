# frozen_string_literal: true

# The hello-world app every server in `bin/bench http` serves.
BODY = ["Hello, World!"].freeze
HEADERS = { "content-type" => "text/plain" }.freeze
run ->(_env) { [200, HEADERS.dup, BODY] }
