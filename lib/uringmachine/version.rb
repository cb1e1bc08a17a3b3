# frozen_string_literal: true

class UringMachine
  # The gem's version.
  VERSION = "0.1.0"
end
