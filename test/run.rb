# frozen_string_literal: true

# Loads the test files named on the command line (all of test/test_*.rb and
# uma/test/test_*.rb when none is named); other arguments go to minitest
# (e.g. -v, -n NAME, --seed N).
files, options = ARGV.partition { |arg| arg.end_with?(".rb") }
if files.empty?
  files = Dir[File.join(__dir__, "test_*.rb")].sort +
          Dir[File.join(__dir__, "..", "uma", "test", "test_*.rb")].sort
end
ARGV.replace(options)
files.each { |file| require File.expand_path(file) }
