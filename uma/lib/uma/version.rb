# frozen_string_literal: true

module Uma
  VERSION = "0.1.0"
end
