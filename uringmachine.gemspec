# frozen_string_literal: true

require_relative "lib/uringmachine/version"

Gem::Specification.new do |s|
  s.name        = "uringmachine"
  s.version     = UringMachine::VERSION
  s.summary     = "Concurrent I/O for Ruby on io_uring"
  s.description = "UringMachine runs fibers over Linux io_uring: every I/O call suspends only the calling fiber."
  s.authors     = ["The UringMachine developers"]
  s.license     = "MIT"
  s.files       = Dir["lib/**/*.rb", "ext/**/*.{c,h,rb}", "sig/**/*.rbs", "docs/**/*.md", "README.md", "CHANGELOG.md", "LICENSE"]
  s.extensions  = ["ext/um/extconf.rb"]
  s.require_paths = ["lib"]
  s.required_ruby_version = ">= 3.4"
  s.platform    = Gem::Platform::RUBY
  s.metadata["rubygems_mfa_required"] = "true"
end
