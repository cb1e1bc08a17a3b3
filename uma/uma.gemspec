# frozen_string_literal: true

require_relative "lib/uma/version"

Gem::Specification.new do |s|
  s.name        = "uma"
  s.version     = Uma::VERSION
  s.summary     = "A Rack 3 HTTP/1.1 server on UringMachine (io_uring)"
  s.description = "Uma serves Rack applications from forked single-threaded workers, a fiber per connection, every socket operation on io_uring."
  s.authors     = ["The UringMachine developers"]
  s.license     = "MIT"
  s.files       = Dir["lib/**/*.rb", "ext/**/*.{c,h,rb}", "exe/*", "README.md"]
  s.bindir      = "exe"
  s.executables = ["uma"]
  s.extensions  = ["ext/uma/extconf.rb"]
  s.require_paths = ["lib"]
  s.required_ruby_version = ">= 3.4"
  s.add_dependency "uringmachine", Uma::VERSION
  s.add_dependency "rack", ">= 3.0"
  s.metadata["rubygems_mfa_required"] = "true"
end
