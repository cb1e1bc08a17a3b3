# frozen_string_literal: true

class UringMachine
  VERSION = "0.1.0"
end
